"""scikit-learn's estimator checks (``parametrize_with_checks``) on inertia's estimators."""

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from inertia.estimators import MLPClassifier, MLPRegressor  # noqa: E402


def expected_failed_checks(estimator):
    """Checks that fail on purpose, each with its reason."""
    return {}


@parametrize_with_checks([MLPClassifier(), MLPRegressor()],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
