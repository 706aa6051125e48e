"""campaign_loop."""
