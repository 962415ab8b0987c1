"""Silver enricher: validates, deduplicates, enriches and pseudonymises bronze into silver."""
