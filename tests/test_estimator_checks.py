"""scikit-learn's estimator checks (``parametrize_with_checks``) on inertia's estimators.

Every check runs with the estimators' defaults (hidden_layer_sizes=(100,), max_iter=200, as
scikit-learn's); the checks' data sets are tiny, so the whole module takes about half a
minute on two cores. No check is expected to fail: ``expected_failed_checks`` is where one
would be listed, with its reason.
"""

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from inertia.estimators import MLPClassifier, MLPRegressor  # noqa: E402


pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def expected_failed_checks(estimator):
    """Checks that fail on purpose, each with its reason."""
    return {}


@parametrize_with_checks([MLPClassifier(), MLPRegressor()],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
