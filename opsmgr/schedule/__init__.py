"""Chairs, clinic hours and the sessions booked on them."""
