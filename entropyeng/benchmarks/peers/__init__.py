"""Peer implementations the engine is compared with (not part of entropyeng)."""
