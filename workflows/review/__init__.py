"""Council-term reviews (611/2021 §14): an agreement in force is negotiated again in every council term."""
