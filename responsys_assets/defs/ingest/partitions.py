"""Partitions of the ingest layer: one dynamic partition per Connect file name."""

import dagster as dg

responsys_files = dg.DynamicPartitionsDefinition(name="responsys_files")
