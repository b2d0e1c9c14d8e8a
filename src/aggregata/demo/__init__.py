"""Seeded synthetic demo data (a product catalogue and product-analytics events) and its loader."""
