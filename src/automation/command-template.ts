/**
 * The command to run for one item, GNU parallel's way: every `{}` in the template's words is replaced by the
 * item; a template without `{}` gets the item as its last argument. The words are arguments of one
 * program run directly, never a shell line, so an item with spaces or `;` stays one argument.
 */
export function commandFor(template: readonly string[], item: string): string[] {
  if (!template.some((word) => word.includes('{}'))) return [...template, item];
  return template.map((word) => word.replaceAll('{}', item));
}
