"""Platinum builder: scheduled data products (ML features, summary, forecasts, private views)."""
