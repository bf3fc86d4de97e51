/**
 * A tiny, strict XML parser for tests: elements, attributes, text and the five entities plus
 * character references. Anything not well-formed throws with the offset (mismatched or unclosed
 * tags, a bare & or <, an unknown entity, a duplicate attribute, a second root, a forbidden
 * character). Not a general parser: no DTDs, CDATA, comments or processing instructions beyond the
 * XML declaration.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /[A-Za-z_:][A-Za-z0-9_:.-]*/y;
const FORBIDDEN = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export function parseXml(src: string): XmlElement {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`XML at ${i}: ${what} (near ${JSON.stringify(src.slice(i, i + 30))})`);
  };
  const bad = FORBIDDEN.exec(src);
  if (bad) {
    i = bad.index;
    fail('forbidden character');
  }
  const ws = (): void => {
    while (i < src.length && /[ \t\r\n]/.test(src[i])) i++;
  };
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(src);
    if (!m) fail('expected a name');
    i += m![0].length;
    return m![0];
  };
  const decode = (raw: string, inAttr: boolean): string => {
    if (raw.includes('<')) fail(`"<" must be escaped${inAttr ? ' in an attribute' : ''}`);
    return raw.replace(/&([^;]*);?/g, (all, ent: string) => {
      if (!all.endsWith(';')) fail(`bare "&"`);
      if (ent === 'amp') return '&';
      if (ent === 'lt') return '<';
      if (ent === 'gt') return '>';
      if (ent === 'quot') return '"';
      if (ent === 'apos') return "'";
      const m = /^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/.exec(ent);
      if (!m) return fail(`unknown entity &${ent};`);
      return String.fromCodePoint(m[1] ? parseInt(m[1], 16) : Number(m[2]));
    });
  };
  const element = (): XmlElement => {
    if (src[i] !== '<') fail('expected "<"');
    i++;
    const el: XmlElement = { name: name(), attrs: {}, children: [], text: '' };
    for (;;) {
      const before = i;
      ws();
      if (src.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (src[i] === '>') {
        i++;
        break;
      }
      if (i === before) fail('expected whitespace before an attribute');
      const an = name();
      ws();
      if (src[i] !== '=') fail('expected "="');
      i++;
      ws();
      const q = src[i];
      if (q !== '"' && q !== "'") fail('expected a quoted attribute value');
      const end = src.indexOf(q, i + 1);
      if (end < 0) fail('unterminated attribute value');
      if (an in el.attrs) fail(`duplicate attribute ${an}`);
      el.attrs[an] = decode(src.slice(i + 1, end), true);
      i = end + 1;
    }
    for (;;) {
      const lt = src.indexOf('<', i);
      if (lt < 0) fail(`unclosed <${el.name}>`);
      el.text += decode(src.slice(i, lt), false);
      i = lt;
      if (src.startsWith('</', i)) {
        i += 2;
        const close = name();
        if (close !== el.name) fail(`</${close}> closes <${el.name}>`);
        ws();
        if (src[i] !== '>') fail('expected ">"');
        i++;
        return el;
      }
      el.children.push(element());
    }
  };
  if (src.startsWith('<?xml')) {
    const end = src.indexOf('?>');
    if (end < 0) fail('unterminated XML declaration');
    i = end + 2;
  }
  ws();
  const root = element();
  ws();
  if (i !== src.length) fail('content after the root element');
  return root;
}

export function children(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}
