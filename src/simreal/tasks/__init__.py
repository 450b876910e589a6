"""Task networks on simreal datasets: losses, configs, Lightning modules, training and prediction."""
