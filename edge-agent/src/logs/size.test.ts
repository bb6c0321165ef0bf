import { ByteSizeError, formatByteSize, parseByteSize } from './size.js';

describe('parseByteSize', () => {
  it('reads the quantities the kubelet takes for containerLogMaxSize', () => {
    expect(parseByteSize('10Mi')).toBe(10 * 1024 * 1024);
    expect(parseByteSize('512Ki')).toBe(512 * 1024);
    expect(parseByteSize('1G')).toBe(1e9);
    expect(parseByteSize('1048576')).toBe(1048576);
    expect(formatByteSize(10 * 1024 * 1024)).toBe('10Mi');
    expect(formatByteSize(1000)).toBe('1000');
  });

  it.each(['', '10 Mi', '-1', '1.5Mi', '10MiB', '10m', '1Ei', '99999999999999Ti', 'x'.repeat(1000)])('refuses %j', (text) => {
    expect(() => parseByteSize(text)).toThrow(ByteSizeError);
  });
});
