"""A dataset that runs for any number of steps by cycling over another one."""

import keras


class Repeat(keras.utils.PyDataset):
    """Serve ``steps`` batches an epoch from ``dataset``, continuing where the last epoch stopped.

    keras-retinanet trained ``--steps`` batches per epoch whatever the dataset size;
    Keras 3 stops a PyDataset at its length, so this restores that behaviour. The
    wrapped dataset is reshuffled each time it is used up.

    Args:
        dataset: a keras.utils.PyDataset (e.g. a Generator).
        steps: batches per epoch.
    """

    def __init__(self, dataset, steps):
        super().__init__(
            workers=getattr(dataset, "workers", 1),
            use_multiprocessing=getattr(dataset, "use_multiprocessing", False),
            max_queue_size=getattr(dataset, "max_queue_size", 10),
        )
        self.dataset = dataset
        self.steps = int(steps)
        self.offset = 0

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        return self.dataset[(self.offset + index) % len(self.dataset)]

    def on_epoch_end(self):
        # The next epoch continues where this one stopped; a used-up dataset is reshuffled.
        self.offset += self.steps
        if self.offset >= len(self.dataset):
            self.dataset.on_epoch_end()
            self.offset %= len(self.dataset)
