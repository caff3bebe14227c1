"""Example models: the demo model trained on scikit-learn digits."""
