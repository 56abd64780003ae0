"""The thesis's experiments (METHOD §5): sweep jobs and their registry, the sweep runner (local or
on Dask), the figures and tables, and the plot of one run.
"""

__all__ = ['jobs', 'jobs_data', 'sweep', 'sweep_dask', 'figures', 'plot_run']
