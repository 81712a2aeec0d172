// An area contributing nothing to `capstan up`.
export const somethingElse = 1;
