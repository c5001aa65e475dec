#!/usr/bin/env python3
"""Writes a review-log CSV for `memora eval-revlog` with ONE card reviewed N
times (default 10 000), every 1-3 days, grades drawn with a fixed seed: the
worst case for the evaluator, whose every item's history is the card's past.

    scripts/one-card-revlog.py 10000 > /tmp/one_card_10k.csv
"""
import datetime
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
random.seed(7)
day = 0
start = datetime.datetime(1800 if n > 20_000 else 2000, 1, 1, 12, tzinfo=datetime.timezone.utc)
print("card_id,review_rating,review_time,review_duration")
for _ in range(n):
    rating = 1 if random.random() < 0.15 else random.choice([2, 3, 3, 3, 4])
    when = (start + datetime.timedelta(days=day)).isoformat()
    print(f"1,{rating},{when},{random.randint(1500, 9000)}")
    day += random.randint(1, 3)
