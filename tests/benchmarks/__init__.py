"""Benchmarks of sign-in, group sync and the admin console, each beside a naive baseline.

`python -m tests.benchmarks` (what `make bench` runs) measures the portal and an honest
re-implementation of the common peer pattern in the same run, on the same emulator and database,
prints one table per benchmark and writes JSON under `bench-output/`. Every run also checks that
the memberships and names produced equal the emulator's ground truth.
"""
