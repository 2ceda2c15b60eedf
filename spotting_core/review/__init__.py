"""What editors review: matches (spotted results folders) and the review store of their decisions."""
