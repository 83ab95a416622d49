#!/usr/bin/env python3
"""Seeded generator of realistic entreprise rows: Luhn-valid SIREN/SIRET,
real NAF codes (from data/naf/), French towns (from docs/samples/).

    gen_entreprises.py ROWS OUT.csv [--seed N] [--first-siren N]

SIRENs are consecutive from --first-siren's 8 digits (default 10000000) plus
their Luhn digit: files with disjoint ranges share no entreprise.
"""
import csv
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def luhn_digit(digits):
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def main():
    rows = int(sys.argv[1])
    out = sys.argv[2]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 2026
    first = int(sys.argv[sys.argv.index("--first-siren") + 1]) if "--first-siren" in sys.argv else 10_000_000
    rng = random.Random(seed)
    naf = [r["code"] for r in csv.DictReader(open(ROOT / "data/naf/naf_rev2_sous_classes.csv", encoding="utf-8"))]
    towns = []
    for line in open(ROOT / "docs/samples/villes_france.csv", encoding="utf-8").read().splitlines()[1:]:
        m = re.match(r"(.+) \((\d+)\)$", line)
        if m:
            towns.append((m.group(1), m.group(2).zfill(5)))
    streets = ["rue de la République", "avenue Jean Jaurès", "place du Marché", "boulevard Victor Hugo",
               "rue des Écoles", "chemin des Vignes", "impasse des Lilas"]
    kinds = ["SARL", "SAS", "EURL", "SA", "SCI", "EI"]
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["siren", "siret", "nom", "nom_commercial", "adresse", "code_postal", "ville_nom", "naf_code",
                    "telephone", "email_contact", "site_web"])
        for i in range(rows):
            base = [int(c) for c in f"{first + i:08d}"]
            siren = base + [luhn_digit(base)]
            nic = [int(c) for c in f"{1 + rng.randrange(99):04d}"]
            siret = siren + nic + [luhn_digit(siren + nic)]
            town, cp = rng.choice(towns)
            s = "".join(map(str, siren))
            w.writerow([s, "".join(map(str, siret)), f"Entreprise {i} {rng.choice(kinds)}", f"Chez {i}",
                        f"{1 + rng.randrange(200)} {rng.choice(streets)}", cp, town, rng.choice(naf),
                        f"0{rng.randrange(1, 6)} {rng.randrange(10, 100)} {rng.randrange(10, 100)} "
                        f"{rng.randrange(10, 100)} {rng.randrange(10, 100)}",
                        f"contact{i}@exemple.fr", f"www.entreprise{i}.fr"])


if __name__ == "__main__":
    main()
