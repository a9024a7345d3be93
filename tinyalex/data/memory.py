"""The in-memory data set: all images in one uint8 array, as CIFAR-10 and the synthetic set keep them."""


class InMemory:
    """Base of the data sets that hold ``images`` uint8 (N, H, W, 3) and ``labels`` int64 (N,).

    ``ds[i]`` -> (image (H, W, 3), int label); ``images_labels()`` -> both arrays, for statistics
    (mean image, PCA) over the whole set; ``DataLoader`` slices ``images`` a batch at a time.
    """

    images = labels = classes = None

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])

    def images_labels(self):
        return self.images, self.labels


class Arrays(InMemory):
    """``Arrays(images, labels, classes)``: a data set made of arrays already in memory (a split, a
    rescaled image folder)."""

    def __init__(self, images, labels, classes):
        if len(images) != len(labels):
            raise ValueError(f"Arrays: {len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.classes = images, labels, list(classes)

    def __repr__(self):
        return f"Arrays({len(self)} images of {self.images.shape[1:]}, {len(self.classes)} classes)"
