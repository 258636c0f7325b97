/**
 * What the libvirt hook reads of a domain XML (given on its stdin): the domain's UUID and name,
 * and each `<devices><interface>`'s MAC and user alias. A small scanner rather than an XML
 * library: it expands no entity (a DOCTYPE, which libvirt never writes, is refused, so no
 * entity can be declared), bounds size and depth, and keeps nothing else of the document.
 */

/** libvirt's domain XML is tens of kilobytes; anything near this is not one. */
export const MAX_DOMAIN_XML_BYTES = 4 * 1024 * 1024;
const MAX_DEPTH = 64;
const MAX_INTERFACES = 256;

/**
 * A user alias naming the interface's port explicitly: `<alias name="ua-overlay-<port id>"/>`
 * (libvirt requires user aliases to start with `ua-`; a UUID's characters are all allowed).
 */
export const PORT_ALIAS_PREFIX = 'ua-overlay-';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

export interface DomainInterface {
  /** 1-based position among the domain's interfaces, for log lines. */
  index: number;
  /** Lower-case MAC of `<mac address=...>`; null when absent or malformed. */
  mac: string | null;
  /** The port named by a `ua-overlay-<id>` alias; null without one. */
  portId: string | null;
}

export interface Domain {
  /** Lower-case UUID of `<uuid>`: the key of the hook's state. */
  uuid: string;
  name: string | null;
  interfaces: DomainInterface[];
}

export class DomainXmlError extends Error {}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** The five predefined entities and character references; any other `&` is refused. */
function decode(text: string): string {
  return text.replace(/&([^;&<]{0,10});?/g, (all, name: string) => {
    if (!all.endsWith(';')) {
      throw new DomainXmlError(`unterminated or unknown entity ${JSON.stringify(all.slice(0, 12))}`);
    }
    if (ENTITIES[name] !== undefined) {
      return ENTITIES[name];
    }
    const code = /^#x([0-9a-fA-F]{1,6})$/.exec(name)?.[1] ?? /^#([0-9]{1,7})$/.exec(name)?.[1];
    const value = code === undefined ? NaN : parseInt(code, name.startsWith('#x') ? 16 : 10);
    if (!Number.isFinite(value) || value > 0x10ffff || value === 0) {
      throw new DomainXmlError(`entity &${name}; is not expanded: only &lt; &gt; &amp; &quot; &apos; and character references are`);
    }
    return String.fromCodePoint(value);
  });
}

const NAME = /[A-Za-z_][\w.:-]*/y;
const SPACE = /[ \t\r\n]*/y;
const ATTRIBUTE = /([A-Za-z_][\w.:-]*)[ \t\r\n]*=[ \t\r\n]*(?:"([^"<]*)"|'([^'<]*)')/y;

function skip(xml: string, at: number, end: string, what: string): number {
  const found = xml.indexOf(end, at);
  if (found < 0) {
    throw new DomainXmlError(`unterminated ${what}`);
  }
  return found + end.length;
}

/** Parses what the hook needs; throws DomainXmlError on anything that is not a well-formed domain XML. */
export function parseDomainXml(xml: string): Domain {
  if (Buffer.byteLength(xml, 'utf8') > MAX_DOMAIN_XML_BYTES) {
    throw new DomainXmlError(`larger than ${MAX_DOMAIN_XML_BYTES} bytes`);
  }
  const stack: string[] = [];
  const interfaces: DomainInterface[] = [];
  let uuid: string | null = null;
  let name: string | null = null;
  let text = '';
  let rootSeen = false;
  let at = 0;
  const path = () => stack.join('/');

  while (at < xml.length) {
    const lt = xml.indexOf('<', at);
    const chunk = xml.slice(at, lt < 0 ? xml.length : lt);
    if (stack.length === 0 && chunk.trim() !== '') {
      throw new DomainXmlError('text outside the root element');
    }
    text += chunk;
    if (lt < 0) {
      break;
    }
    at = lt;
    if (xml.startsWith('<!--', at)) {
      at = skip(xml, at + 4, '-->', 'comment');
    } else if (xml.startsWith('<![CDATA[', at)) {
      at = skip(xml, at + 9, ']]>', 'CDATA section');
    } else if (xml.startsWith('<!', at)) {
      throw new DomainXmlError('a DOCTYPE or other declaration is not accepted (no entity is ever expanded)');
    } else if (xml.startsWith('<?', at)) {
      at = skip(xml, at + 2, '?>', 'processing instruction');
    } else if (xml.startsWith('</', at)) {
      NAME.lastIndex = at + 2;
      const closing = NAME.exec(xml)?.[0];
      SPACE.lastIndex = at + 2 + (closing?.length ?? 0);
      SPACE.exec(xml);
      if (closing === undefined || xml[SPACE.lastIndex] !== '>' || closing !== stack[stack.length - 1]) {
        throw new DomainXmlError(`mismatched closing tag at offset ${at}`);
      }
      if (path() === 'domain/uuid') {
        uuid = decode(text).trim().toLowerCase();
      } else if (path() === 'domain/name') {
        name = decode(text).trim();
      }
      stack.pop();
      text = '';
      at = SPACE.lastIndex + 1;
    } else {
      NAME.lastIndex = at + 1;
      const element = NAME.exec(xml)?.[0];
      if (element === undefined) {
        throw new DomainXmlError(`malformed tag at offset ${at}`);
      }
      if (stack.length === 0 && (rootSeen || element !== 'domain')) {
        throw new DomainXmlError(rootSeen ? 'a second root element' : `the root element is <${element}>, not <domain>`);
      }
      rootSeen = true;
      let cursor = NAME.lastIndex;
      const attributes = new Map<string, string>();
      for (;;) {
        SPACE.lastIndex = cursor;
        SPACE.exec(xml);
        const spaced = SPACE.lastIndex > cursor;
        cursor = SPACE.lastIndex;
        if (xml[cursor] === '>' || xml.startsWith('/>', cursor)) {
          break;
        }
        ATTRIBUTE.lastIndex = cursor;
        const m = spaced ? ATTRIBUTE.exec(xml) : null;
        if (!m) {
          throw new DomainXmlError(`malformed attribute in <${element}> at offset ${cursor}`);
        }
        if (attributes.has(m[1])) {
          throw new DomainXmlError(`attribute ${m[1]} given twice in <${element}>`);
        }
        attributes.set(m[1], decode(m[2] ?? m[3]));
        cursor = ATTRIBUTE.lastIndex;
      }
      const selfClosing = xml[cursor] === '/';
      at = cursor + (selfClosing ? 2 : 1);
      stack.push(element);
      if (stack.length > MAX_DEPTH) {
        throw new DomainXmlError(`nested deeper than ${MAX_DEPTH} elements`);
      }
      const where = path();
      if (where === 'domain/devices/interface') {
        if (interfaces.length === MAX_INTERFACES) {
          throw new DomainXmlError(`more than ${MAX_INTERFACES} interfaces`);
        }
        interfaces.push({ index: interfaces.length + 1, mac: null, portId: null });
      } else if (where === 'domain/devices/interface/mac') {
        const mac = attributes.get('address')?.toLowerCase();
        interfaces[interfaces.length - 1].mac = mac !== undefined && MAC.test(mac) ? mac : null;
      } else if (where === 'domain/devices/interface/alias') {
        const alias = attributes.get('name') ?? '';
        const id = alias.startsWith(PORT_ALIAS_PREFIX) ? alias.slice(PORT_ALIAS_PREFIX.length).toLowerCase() : '';
        interfaces[interfaces.length - 1].portId = UUID.test(id) ? id : null;
      }
      text = '';
      if (selfClosing) {
        stack.pop();
      }
    }
  }
  if (!rootSeen || stack.length) {
    throw new DomainXmlError(rootSeen ? `<${stack[stack.length - 1]}> is not closed` : 'no <domain> element');
  }
  if (uuid === null || !UUID.test(uuid)) {
    throw new DomainXmlError('no valid <uuid> in <domain>');
  }
  return { uuid, name, interfaces };
}
