"""Classical denoising: filters, outlier removal, noise models and metrics (pure: no Qt)."""
