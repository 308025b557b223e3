"""The migrations, oldest first (files named by revision)."""
