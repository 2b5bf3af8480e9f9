from django.core.files.storage import FileSystemStorage, InMemoryStorage


class _NoURL:
    def url(self, name):
        raise ValueError("Private files have no URL: serve them through a view that checks who asks.")


class PrivateFileSystemStorage(_NoURL, FileSystemStorage):
    """Personal files on disk, outside MEDIA_ROOT and MEDIA_URL."""


class PrivateInMemoryStorage(_NoURL, InMemoryStorage):
    """The same for tests."""
