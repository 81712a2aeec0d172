// A module with no custom resource.
export const answer = 42;
