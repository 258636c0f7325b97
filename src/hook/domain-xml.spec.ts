import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DomainXmlError, MAX_DOMAIN_XML_BYTES, parseDomainXml } from './domain-xml';

const UUID = '4dea22b3-1d52-d8f3-2516-782e98ab3fa0';
const PORT = '0193a1b2-7c4d-7e5f-8a6b-1c2d3e4f5a6b';

const domain = (devices: string, head = '') => `<domain type='kvm'>${head}<name>web-1</name><uuid>${UUID}</uuid><devices>${devices}</devices></domain>`;

describe('parseDomainXml', () => {
  it('reads the example of deploy/libvirt: uuid, name, each interface with its MAC and its port alias', () => {
    const xml = readFileSync(join(__dirname, '..', '..', 'deploy', 'libvirt', 'example-domain.xml'), 'utf8');
    expect(parseDomainXml(xml)).toEqual({
      uuid: '4dea22b3-1d52-d8f3-2516-782e98ab3fa0',
      name: 'web-1',
      interfaces: [
        { index: 1, mac: '52:54:00:6b:3c:58', portId: null },
        { index: 2, mac: '52:54:00:11:22:33', portId: '0193a1b2-7c4d-7e5f-8a6b-1c2d3e4f5a6b' },
        { index: 3, mac: '52:54:00:aa:bb:cc', portId: null },
      ],
    });
  });

  it('lower-cases MACs and ids, decodes the predefined entities and character references, skips comments, CDATA and processing instructions', () => {
    const xml = `<?xml version="1.0"?>\n<!-- a comment with <interface> in it -->${domain(
      `<interface type="bridge"><mac address="52:54:00:AB:CD:EF"/><alias name='ua-overlay-${PORT.toUpperCase()}'/></interface>` +
        `<![CDATA[<interface><mac address="52:54:00:00:00:01"/></interface>]]>` +
        `<interface type='network'><mac address='52&#x3a;54:00:00:00:02'/></interface>`,
      '<description>a &lt;b&gt; &amp; &quot;c&quot; &#233;</description>',
    )}`;
    expect(parseDomainXml(xml).interfaces).toEqual([
      { index: 1, mac: '52:54:00:ab:cd:ef', portId: PORT },
      { index: 2, mac: '52:54:00:00:00:02', portId: null },
    ]);
  });

  it('keeps an interface with no MAC, a malformed MAC or a foreign alias, without a port of its own', () => {
    const xml = domain(`<interface type='bridge'/><interface><mac address='zz'/><alias name='ua-net0'/></interface><interface><alias name='ua-overlay-not-a-uuid'/></interface>`);
    expect(parseDomainXml(xml).interfaces).toEqual([
      { index: 1, mac: null, portId: null },
      { index: 2, mac: null, portId: null },
      { index: 3, mac: null, portId: null },
    ]);
  });

  it('reads only <devices><interface> of the domain: not an interface in metadata, nor a namespaced one', () => {
    const xml = domain(
      `<hostdev><interface><mac address='52:54:00:00:00:09'/></interface></hostdev><x:interface xmlns:x='urn:x'><mac address='52:54:00:00:00:08'/></x:interface>`,
      `<metadata><interface><mac address='52:54:00:00:00:07'/></interface></metadata>`,
    );
    expect(parseDomainXml(xml).interfaces).toEqual([]);
  });

  it.each([
    ['a DOCTYPE (entities could be declared there)', `<!DOCTYPE domain [<!ENTITY a "aaaaaaaaaa">]>${domain('&a;')}`, /DOCTYPE/],
    ['a billion laughs', `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><domain>&lol2;</domain>`, /DOCTYPE/],
    ['an external entity reference', domain(`<interface><mac address='&xxe;'/></interface>`), /entity &xxe;/],
    ['an unterminated entity', domain(`<interface><mac address='&amp'/></interface>`), /entity/],
    ['a NUL character reference', domain(`<interface><mac address='&#0;'/></interface>`), /entity/],
    ['another root', `<network><uuid>${UUID}</uuid></network>`, /root element is <network>/],
    ['two roots', `${domain('')}${domain('')}`, /second root/],
    ['text after the root', `${domain('')}junk`, /outside the root/],
    ['a mismatched closing tag', `<domain><uuid>${UUID}</name></domain>`, /mismatched/],
    ['an unclosed element', `<domain><uuid>${UUID}</uuid><devices>`, /<devices> is not closed/],
    ['an unterminated comment', `<domain><!-- ${UUID}`, /unterminated comment/],
    ['a duplicate attribute', domain(`<interface><mac address='52:54:00:00:00:01' address='52:54:00:00:00:02'/></interface>`), /given twice/],
    ['an attribute without quotes', domain(`<interface><mac address=52:54:00:00:00:01/></interface>`), /malformed attribute/],
    ['attributes run together', domain(`<interface><mac a='1'b='2'/></interface>`), /malformed attribute/],
    ['a < in an attribute', domain(`<interface><mac address='<'/></interface>`), /malformed attribute/],
    ['a truncated document', domain('<interface><mac address="52:54').slice(0, 60), /malformed|not closed/],
    ['no uuid', `<domain><name>x</name></domain>`, /no valid <uuid>/],
    ['a uuid that is a path', `<domain><uuid>../../etc/passwd</uuid></domain>`, /no valid <uuid>/],
    ['an empty document', '', /no <domain>/],
    ['nesting without end', `<domain>${'<a>'.repeat(100)}${'</a>'.repeat(100)}</domain>`, /deeper than/],
    ['too many interfaces', domain('<interface/>'.repeat(257)), /more than 256 interfaces/],
  ])('refuses %s', (_what, xml, message) => {
    expect(() => parseDomainXml(xml)).toThrow(DomainXmlError);
    expect(() => parseDomainXml(xml)).toThrow(message);
  });

  it('refuses a document over the size bound without scanning it', () => {
    const xml = domain(`<description>${'x'.repeat(MAX_DOMAIN_XML_BYTES)}</description>`);
    expect(() => parseDomainXml(xml)).toThrow(/larger than/);
  });
});
