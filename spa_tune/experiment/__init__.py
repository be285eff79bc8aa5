"""Run an experiment: experiment folder, Ray session, Tuner, and what happens at the end."""
