"""UGL end to end: RegNet-Y + Gate-Shift backbone trained on frames, with the UGL head."""
