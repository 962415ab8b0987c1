"""Traffic simulator: realistic POS, API, IoT and master-data records, with faults on request."""
