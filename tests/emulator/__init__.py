"""Tests of the bundled Entra ID + Microsoft Graph emulator."""
