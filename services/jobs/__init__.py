"""Job machinery: store (database), ports, scheduler (who starts next), supervisor (processes)."""
