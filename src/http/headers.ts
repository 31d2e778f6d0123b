/**
 * Header fields: case-insensitive names, repeated fields kept in order.
 *
 * @module
 */

/** Response or trailer fields. Names are matched case-insensitively. */
export class HttpHeaders {
  // As received: name, value, name, value... The only store a response
  // needs until someone looks a field up: most fetches read no header, or
  // only turn them into an object once.
  readonly #raw: string[] = [];
  // Lower-cased name -> its values, in order; built on the first lookup.
  #fields: Map<string, string[]> | null = null;

  /** @internal */
  append(name: string, value: string): void {
    this.#raw.push(name, value);
    if (this.#fields !== null) addField(this.#fields, lowerName(name), value);
  }

  /** @internal The value of the field appended last. */
  lastValue(): string {
    return this.#raw[this.#raw.length - 1] as string;
  }

  /** The field's values joined with ', ' (RFC 9110 5.3), or undefined. */
  get(name: string): string | undefined {
    const values = this.#map().get(name.toLowerCase());
    return values === undefined ? undefined : joinValues(values);
  }

  /** Every value of the field, in order (e.g. each Set-Cookie). */
  getAll(name: string): string[] {
    return [...(this.#map().get(name.toLowerCase()) ?? [])];
  }

  has(name: string): boolean {
    return this.#map().has(name.toLowerCase());
  }

  /** The fields as received: names in their original case, in order. */
  raw(): readonly (readonly [string, string])[] {
    const raw = this.#raw;
    const pairs: [string, string][] = [];
    for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i] as string, raw[i + 1] as string]);
    return pairs;
  }

  /** Lower-cased name -> values joined with ', ', names in the order they first came. */
  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    const raw = this.#raw;
    for (let i = 0; i < raw.length; i += 2) {
      const name = lowerName(raw[i] as string);
      const value = raw[i + 1] as string;
      if (name === '__proto__') {
        // A field named __proto__ is data here, not the prototype's setter.
        const previous = Object.getOwnPropertyDescriptor(out, name)?.value as string | undefined;
        Object.defineProperty(out, name, {
          value: previous === undefined ? value : `${previous}, ${value}`,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        // Repeated fields join in order (RFC 9110 5.3); most come once. What
        // `out` inherits (constructor, toString...) is never a string.
        const previous = out[name];
        out[name] = typeof previous === 'string' ? `${previous}, ${value}` : value;
      }
    }
    return out;
  }

  #map(): Map<string, string[]> {
    if (this.#fields !== null) return this.#fields;
    const fields = new Map<string, string[]>();
    const raw = this.#raw;
    for (let i = 0; i < raw.length; i += 2) addField(fields, lowerName(raw[i] as string), raw[i + 1] as string);
    this.#fields = fields;
    return fields;
  }
}

function addField(fields: Map<string, string[]>, key: string, value: string): void {
  const values = fields.get(key);
  if (values === undefined) fields.set(key, [value]);
  else values.push(value);
}

function joinValues(values: readonly string[]): string {
  return values.length === 1 ? (values[0] as string) : values.join(', ');
}

// Field names as servers spell them -> lower case. Servers send the same
// few names in the same case on every response: remembering them saves a
// toLowerCase per field, and hands toObject() the same key strings each
// time, which V8 interns once (a fresh key string is looked up in its
// string table on every store). Bounded, so odd names cannot grow it.
const LOWER_NAMES = new Map<string, string>();
const MAX_LOWER_NAMES = 512;

function lowerName(name: string): string {
  let lower = LOWER_NAMES.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    if (LOWER_NAMES.size < MAX_LOWER_NAMES) LOWER_NAMES.set(name, lower);
  }
  return lower;
}
