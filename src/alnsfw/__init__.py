"""alnsfw."""
