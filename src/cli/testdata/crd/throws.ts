// A module that fails while loading.
throw new Error('boom while defining');
