"""Bronze writer: lands every source record immutably in bronze_transactions_raw, exactly once."""
