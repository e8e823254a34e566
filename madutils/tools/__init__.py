"""Tools above the experiments: the calibration of the claim criteria on null simulations
(``python -m madutils.tools.calibration``) and the budget of seeds and generations measured on stored runs
(``python -m madutils.tools.budget``). The criteria themselves are in :mod:`madutils.claims`."""
