/**
 * Header fields: case-insensitive names, repeated fields kept in order.
 *
 * @module
 */

/** Response or trailer fields. Names are matched case-insensitively. */
export class HttpHeaders {
  // Lower-cased name -> its values, in order. Most fields come once.
  readonly #fields = new Map<string, string[]>();
  // As received: name, value, name, value... (pairs made on demand).
  readonly #raw: string[] = [];

  /** @internal */
  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const values = this.#fields.get(key);
    if (values === undefined) this.#fields.set(key, [value]);
    else values.push(value);
    this.#raw.push(name, value);
  }

  /** The field's values joined with ', ' (RFC 9110 5.3), or undefined. */
  get(name: string): string | undefined {
    const values = this.#fields.get(name.toLowerCase());
    return values === undefined ? undefined : joinValues(values);
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
    const raw = this.#raw;
    const pairs: [string, string][] = [];
    for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i] as string, raw[i + 1] as string]);
    return pairs;
  }

  /** Lower-cased name -> values joined with ', '. */
  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, values] of this.#fields) {
      // A field named __proto__ is data here, not the prototype's setter.
      if (name === '__proto__') {
        Object.defineProperty(out, name, {
          value: joinValues(values),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        out[name] = joinValues(values);
      }
    }
    return out;
  }
}

function joinValues(values: readonly string[]): string {
  return values.length === 1 ? (values[0] as string) : values.join(', ');
}
