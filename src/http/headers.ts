/**
 * Header fields: case-insensitive names, repeated fields kept in order.
 *
 * @module
 */

/** Response or trailer fields. Names are matched case-insensitively. */
export class HttpHeaders {
  readonly #fields = new Map<string, string[]>();
  readonly #raw: [string, string][] = [];

  /** @internal */
  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const values = this.#fields.get(key);
    if (values === undefined) this.#fields.set(key, [value]);
    else values.push(value);
    this.#raw.push([name, value]);
  }

  /** The field's values joined with ', ' (RFC 9110 5.3), or undefined. */
  get(name: string): string | undefined {
    return this.#fields.get(name.toLowerCase())?.join(', ');
  }

  /** Every value of the field, in order (e.g. each Set-Cookie). */
  getAll(name: string): string[] {
    return [...(this.#fields.get(name.toLowerCase()) ?? [])];
  }

  has(name: string): boolean {
    return this.#fields.has(name.toLowerCase());
  }

  /** The fields as received: names in their original case, in order. */
  raw(): readonly (readonly [string, string])[] {
    return this.#raw;
  }

  /** Lower-cased name -> values joined with ', '. */
  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, values] of this.#fields) out[name] = values.join(', ');
    return out;
  }
}
