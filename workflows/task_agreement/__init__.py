"""Task-specific cooperation agreements (tehtäväkohtainen yhteistyösopimus) hanging off a framework agreement."""
