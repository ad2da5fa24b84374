"""Delivery adapters: gateway events out to a partner's or the platform's system."""
