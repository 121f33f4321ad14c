"""Routing under a cost budget, learnt and evaluated from logged data."""
