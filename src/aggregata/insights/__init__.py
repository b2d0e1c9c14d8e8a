"""Product analytics: trends, stickiness, lifecycle, funnels, retention, and rollups."""
