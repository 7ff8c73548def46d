import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { Markdown } from './Markdown';

describe('Markdown', () => {
  it('renders formatting and lists', () => {
    const html = renderToStaticMarkup(<Markdown text={'**20 days** a year\n\n- 5 carry over'} />);
    expect(html).toContain('<strong>20 days</strong>');
    expect(html).toContain('<li>5 carry over</li>');
  });

  it('shows raw HTML as text', () => {
    const html = renderToStaticMarkup(<Markdown text={'<img src=x onerror="alert(1)"> <script>alert(2)</script>'} />);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;script&gt;');
  });

  it('turns images into links', () => {
    const html = renderToStaticMarkup(<Markdown text={'![secret](https://evil.example/x.png?d=1)'} />);
    expect(html).not.toContain('<img');
    expect(html).toContain('href="https://evil.example/x.png?d=1"');
    expect(html).toContain('Image: secret');
  });

  it('drops javascript links', () => {
    const html = renderToStaticMarkup(<Markdown text={'[click](javascript:alert(1))'} />);
    expect(html).not.toContain('javascript:');
  });
});
