"""Tools above the experiments: the calibration of the claim criteria on null simulations
(``python -m madutils.tools.calibration``), the budget of seeds and generations measured on stored runs
(``python -m madutils.tools.budget``) and the one-time migration of a store written before format 2
(``python -m madutils.tools.migrate``). The criteria themselves are in :mod:`madutils.claims`."""
