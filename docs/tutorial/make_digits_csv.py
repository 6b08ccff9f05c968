"""Write scikit-learn's digits (1797 images of 8 x 8 pixels, bundled with scikit-learn) as CSV.

    python docs/tutorial/make_digits_csv.py            # digits.csv and new.csv here
    python docs/tutorial/make_digits_csv.py --out DIR  # ... in DIR

digits.csv holds the first 1697 images: a header, the 64 pixel columns p0..p63 (0 to 16) and a
``digit`` column naming the class ("zero" .. "nine"). new.csv holds the last 100 images without
the ``digit`` column, as data to predict.
"""

import argparse
import csv
import os

from sklearn.datasets import load_digits

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
N_NEW = 100


def write_csv(path, X, y=None):
    """Write rows of X (n, 64) with a header; y (n,) integer classes, named, as a last column."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow([f"p{j}" for j in range(X.shape[1])] + ([] if y is None else ["digit"]))
        for i, row in enumerate(X):
            cells = [f"{v:g}" for v in row]
            out.writerow(cells if y is None else cells + [NAMES[y[i]]])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for digits.csv and new.csv")
    args = parser.parse_args(argv)
    X, y = load_digits(return_X_y=True)
    write_csv(os.path.join(args.out, "digits.csv"), X[:-N_NEW], y[:-N_NEW])
    write_csv(os.path.join(args.out, "new.csv"), X[-N_NEW:])
    print(f"wrote {len(X) - N_NEW} labelled rows to digits.csv, {N_NEW} to new.csv")


if __name__ == "__main__":
    main()
