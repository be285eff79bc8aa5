"""What people compare: the results table, the Pareto front and the figures."""
