"""Development tools, not product: the Entra ID + Graph emulator, the demo and the seeder."""
