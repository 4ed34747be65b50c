"""Data: reading images and annotations, preparing network inputs, augmentation, targets and the tf.data pipeline."""
