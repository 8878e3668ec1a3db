"""Tests for routing/ (key codec, key map, proxy against real engine processes, client)."""
