"""The Python half of docs/tutorial.md: scikit-learn's digits with inertia.

    python docs/tutorial/digits_python.py                      # the tutorial's numbers
    python docs/tutorial/digits_python.py --figure curve.png   # the learning-curve picture

Part 1 puts ``inertia.MLPClassifier`` in a scikit-learn Pipeline: cross-validation, then a
GridSearchCV over momentum x learning_rate_init. Part 2 trains the same network with the core
API, ``inertia.fit`` with validation data and early stopping, and draws its learning curve.
Each part is a function of its scale (epochs, folds, rows) so that tests/test_tutorial.py runs
the same code smaller.
"""

import argparse
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.model_selection import train_test_split as sk_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import inertia

NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                  "nine"])
GRID = {"mlp__momentum": [0.0, 0.5, 0.9, 0.95], "mlp__learning_rate_init": [0.001, 0.01, 0.1]}


def digits(n_rows=None):
    """X (n, 64) float64 pixels 0..16 and y (n,) class names "zero".."nine"."""
    X, y = load_digits(return_X_y=True)
    return X[:n_rows], NAMES[y[:n_rows]]


def pipeline_part(X, y, max_iter=50, cv=5, grid=GRID, n_jobs=1):
    """Cross-validate a scaled MLPClassifier, then grid-search momentum x learning rate.
    Returns (cross-validation scores, fitted GridSearchCV, test accuracy of its best model)."""
    X_train, X_test, y_train, y_test = sk_split(X, y, test_size=0.2, stratify=y,
                                                random_state=0)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", inertia.MLPClassifier(hidden_layer_sizes=(64,), batch_size=32,
                                                   learning_rate_init=0.01, momentum=0.9,
                                                   max_iter=max_iter, random_state=0))])
    scores = cross_val_score(pipe, X_train, y_train, cv=cv, n_jobs=n_jobs)
    search = GridSearchCV(pipe, grid, cv=cv, n_jobs=n_jobs).fit(X_train, y_train)
    return scores, search, search.score(X_test, y_test)


def core_part(X, y, lr=0.03, epochs=200, patience=10, min_delta=1e-3, seed=0):
    """Train 64-64-10 (relu, softmax) with inertia.fit on standardized data, validating on
    a stratified 20% and stopping once the validation loss has not improved by more than
    ``min_delta`` for ``patience`` epochs (then the best epoch's weights are put back).
    Returns (net, History, class names); the labels are indices into the class names."""
    classes, labels = np.unique(y, return_inverse=True)
    X_train, X_val, y_train, y_val = inertia.datasets.train_test_split(
        X, labels, test_size=0.2, random_state=seed, stratify=labels)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0                                   # pixels that are always blank
    X_train, X_val = (X_train - mean) / std, (X_val - mean) / std
    net = inertia.Network(64, [inertia.Dense(64, "relu"), inertia.Dense(len(classes), "softmax")],
                          seed=seed)
    hist = inertia.fit(net, X_train, y_train, loss="cross_entropy",
                       optimizer=inertia.SGD(lr=lr, momentum=0.9), epochs=epochs,
                       batch_size=32, seed=seed, validation_data=(X_val, y_val),
                       early_stopping=inertia.EarlyStopping(monitor="val_loss",
                                                            patience=patience,
                                                            min_delta=min_delta),
                       progress=False)
    return net, hist, classes


def learning_curve(hist, path):
    """Training and validation loss (log scale, left) and validation accuracy (right) per
    epoch, in inertia's plotting style; the restored best epoch is marked."""
    from inertia import plots

    fig, ax = plots.new_figure(figsize=(8, 4.8))
    epochs = np.arange(1, len(hist.loss) + 1)
    ax.plot(epochs, hist.loss, color=plots.CYCLE[0], lw=1.6, label="training loss")
    ax.plot(epochs, hist.val_loss, color=plots.CYCLE[1], lw=1.6, label="validation loss")
    ax.set_yscale("log")
    ax.set_xlabel("epoch", fontsize=11)
    ax.set_ylabel("cross-entropy (log scale)", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    acc = ax.twinx()
    acc.plot(epochs, hist.val_accuracy, color=plots.CYCLE[2], lw=1.4, ls="--",
             label="validation accuracy")
    acc.set_ylabel("validation accuracy", fontsize=11)
    acc.set_ylim(min(hist.val_accuracy) - 0.02, 1.0)
    if hist.best_epoch is not None:
        ax.axvline(hist.best_epoch + 1, color="black", lw=1.0, ls=":",
                   label=f"best epoch ({hist.best_epoch + 1}), weights restored")
    lines = ax.get_legend_handles_labels()
    more = acc.get_legend_handles_labels()
    fig.legend(lines[0] + more[0], lines[1] + more[1], fontsize=9, loc="outside lower center",
               ncols=2)
    ax.set_title("digits: 64-64-10, SGD momentum 0.9, batch 32, early stopping on the"
                 " validation loss", fontsize=11)
    return plots.save(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", help="write the learning curve here (.png)")
    parser.add_argument("--n-jobs", type=int, default=2, help="processes for the grid search")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=50 on purpose
    X, y = digits()
    scores, search, test_score = pipeline_part(X, y, n_jobs=args.n_jobs)
    print(f"cross-validation accuracy {scores.mean():.4f} +- {scores.std():.4f}"
          f"  ({scores.round(4)})")
    ranked = np.argsort(search.cv_results_["rank_test_score"], kind="stable")
    for k in ranked:
        p = search.cv_results_["params"][k]
        print(f"  momentum {p['mlp__momentum']:<5} lr {p['mlp__learning_rate_init']:<6}"
              f" accuracy {search.cv_results_['mean_test_score'][k]:.4f}")
    print(f"best {search.best_params_}: cv {search.best_score_:.4f}, test {test_score:.4f}")
    net, hist, classes = core_part(X, y)
    print(f"inertia.fit: {len(hist.loss)} epochs, stopped after epoch {hist.stopped_epoch},"
          f" best epoch {hist.best_epoch}: val_loss {hist.val_loss[hist.best_epoch]:.4f},"
          f" val_accuracy {hist.val_accuracy[hist.best_epoch]:.4f}")
    if args.figure:
        print("wrote", learning_curve(hist, args.figure))


if __name__ == "__main__":
    main()
