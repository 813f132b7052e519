/**
 * End to end in headless Chromium (Debian's chromium driven by playwright-core; no browser download): a
 * labeler signs in, ranks a prompt's completions by dragging, writes a demonstration, and the export holds
 * exactly those labels; a second labeler's token cannot read the first one's items.
 * Screenshots for the README are rewritten when STUDIO_SCREENSHOTS=1.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ensureAdmin, startStudio, type Studio } from './server';
import { call, startMockCompletions } from './test-helpers';

// Overridable only so that the missing-browser behaviour itself can be checked (STUDIO_CHROMIUM=/nonexistent).
const CHROMIUM = process.env.STUDIO_CHROMIUM ?? '/usr/bin/chromium';
const hasBrowser = existsSync(CHROMIUM);
const docs = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs');
const shoot = process.env.STUDIO_SCREENSHOTS === '1';

if (!hasBrowser && process.env.CI !== 'true') {
  console.warn(`studio e2e: SKIPPED: ${CHROMIUM} is missing (run scripts/setup-chromium.sh); under CI=true this fails`);
}

describe.skipIf(!hasBrowser && process.env.CI !== 'true')('studio in headless Chromium', () => {
  let dir: string;
  let studio: Studio;
  let mock: Awaited<ReturnType<typeof startMockCompletions>>;
  let context: BrowserContext;
  let admin: string;
  let ana: string;
  let bo: string;
  const XSS = '<img src=x onerror="document.title=\'pwned\'">Name three colours';

  beforeAll(async () => {
    if (!hasBrowser) throw new Error(`${CHROMIUM} is missing and CI=true: the end-to-end test cannot run; install it with scripts/setup-chromium.sh`);
    dir = mkdtempSync(join(tmpdir(), 'studio-e2e-'));
    mock = await startMockCompletions();
    writeFileSync(join(dir, 'studio.json'), JSON.stringify({ completions: { source: 'openai', url: mock.url, model: 'mock' } }));
    studio = await startStudio({ projectDir: dir, port: 0, log: () => {} });
    admin = ensureAdmin(studio.store)!;
    ana = (await call(studio.url, 'POST', '/api/admin/labelers', admin, { name: 'ana' })).body.token;
    expect((await call(studio.url, 'POST', '/api/admin/upload?task=ranking&k=3&overlap=1&filename=p.jsonl', admin, JSON.stringify({ prompt: XSS }), true)).body).toEqual({ added: 1, dropped: 0 });
    expect((await call(studio.url, 'POST', '/api/admin/upload?task=response&overlap=1&filename=q.jsonl', admin, JSON.stringify({ prompt: 'Explain rain to a child.' }), true)).body).toEqual({ added: 1, dropped: 0 });
    // bo joins after both items are fully assigned to ana, and gets one item of his own.
    bo = (await call(studio.url, 'POST', '/api/admin/labelers', admin, { name: 'bo' })).body.token;
    expect((await call(studio.url, 'POST', '/api/admin/open-tasks', admin, { task: 'prompt', count: 1, overlap: 1 })).body).toEqual({ added: 1 });
    context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'studio-chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 900, height: 640 },
      acceptDownloads: true,
      timeout: 90_000,
    });
    context.setDefaultTimeout(30_000);
  }, 150_000);

  afterAll(async () => {
    await context?.close();
    await studio?.close();
    await mock?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function signIn(token: string): Promise<Page> {
    const page = await context.newPage();
    await page.goto(studio.url);
    await page.fill('#token', token);
    await page.click('#login button[type=submit]');
    return page;
  }

  it('a labeler ranks completions and writes a demonstration; the export holds exactly those labels', async () => {
    const page = await signIn(ana);
    await page.locator('#queue li').nth(1).waitFor();
    expect(await page.locator('#who').textContent()).toBe('signed in as ana');
    if (shoot) await page.screenshot({ path: join(docs, 'queue.png') });

    // Ranking: completions A, B, C; drag C above A, then tie B with A: tiers [[C], [A, B]].
    await page.locator('#queue li').nth(0).locator('a').click();
    await page.locator('#ranking li').nth(2).waitFor();
    expect(await page.locator('#prompt').textContent()).toBe(XSS);
    expect(await page.locator('main img').count()).toBe(0);
    await page.locator('#ranking li[data-index="2"]').dragTo(page.locator('#ranking li[data-index="0"]'), { targetPosition: { x: 20, y: 8 } });
    expect(await page.locator('#ranking li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-index')))).toEqual(['2', '0', '1']);
    await page.locator('#ranking li[data-index="1"] input.tie').check();
    expect(await page.locator('#ranking li .pos').allTextContents()).toEqual(['1.', '2.', '2.']);
    // The buttons move a completion too (for people who do not drag): C down one place and back.
    const order = () => page.locator('#ranking li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-index')));
    await page.locator('#ranking li[data-index="2"] button.down').click();
    expect(await order()).toEqual(['0', '2', '1']);
    await page.locator('#ranking li[data-index="2"] button.up').click();
    expect(await order()).toEqual(['2', '0', '1']);
    expect(await page.locator('#ranking li .pos').allTextContents()).toEqual(['1.', '2.', '2.']);
    if (shoot) await page.screenshot({ path: join(docs, 'ranking.png') });
    await page.click('#submit');
    await page.locator('#status.ok').waitFor();
    expect(await page.locator('#status').textContent()).toMatch(/^Saved #\d+\.$/);

    // Demonstration: an empty answer is refused with the server's message on the page, then a real one is saved.
    await page.locator('#queue li').nth(0).locator('a').click();
    await page.locator('#response').waitFor();
    await page.fill('#response', '   ');
    await page.click('#submit');
    await page.locator('#status.error').waitFor();
    expect(await page.locator('#status').textContent()).toBe('response is empty');
    const answer = 'Clouds are made of tiny drops of water.\nWhen the drops get heavy, they fall: that is rain. <b>not bold</b>';
    await page.fill('#response', answer);
    if (shoot) await page.screenshot({ path: join(docs, 'demonstration.png') });
    await page.click('#submit');
    await page.locator('#status.ok').waitFor();
    await page.locator('#empty').waitFor();
    expect(await page.title()).toBe('rlhf label');
    await page.close();

    // The admin page's export button downloads the same JSONL as the API.
    const adminPage = await signIn(admin);
    await adminPage.locator('#progress').waitFor();
    if (shoot) await adminPage.screenshot({ path: join(docs, 'admin.png'), fullPage: true });
    // The admin creates a labeler (the token is shown once and works) and uploads a prompts file from the page.
    await adminPage.fill('#new-labeler', 'dee');
    await adminPage.click('#new-labeler ~ button');
    const deeToken = (await adminPage.locator('#new-token .token').textContent())!;
    expect((await call(studio.url, 'GET', '/api/me', deeToken)).body).toEqual({ name: 'dee', admin: false });
    await adminPage.selectOption('#upload-task', 'response');
    await adminPage.setInputFiles('#upload-file', { name: 'more.jsonl', mimeType: 'application/json', buffer: Buffer.from('{"prompt":"First"}\n{"prompt":"Second"}\n') });
    await adminPage.click('form:has(#upload-file) button[type=submit]');
    await adminPage.locator('#status.ok').waitFor();
    expect(await adminPage.locator('#status').textContent()).toBe('Added 2 items.');
    expect(studio.store.items().filter((i) => i.source === 'more.jsonl').map((i) => i.prompt)).toEqual(['First', 'Second']);
    const [download] = await Promise.all([adminPage.waitForEvent('download'), adminPage.click('#export button[data-kind="comparisons"]')]);
    const comparisons = readFileSync((await download.path())!, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(comparisons).toHaveLength(1);
    expect(comparisons[0]).toMatchObject({
      kind: 'comparison',
      prompt: XSS,
      completions: [`${XSS} -> answer 0`, `${XSS} -> answer 1`, `${XSS} -> answer 2`],
      ranking: [[2], [0, 1]],
      labeler: 'ana',
    });
    await adminPage.close();
    const demos = ((await call(studio.url, 'GET', '/api/admin/export/demonstrations', admin)).body as string).trim().split('\n').map((l) => JSON.parse(l));
    expect(demos).toHaveLength(1);
    expect(demos[0]).toMatchObject({ kind: 'demonstration', prompt: 'Explain rain to a child.', completion: answer, meta: { labeler: 'ana', task: 'response' } });
    expect((await call(studio.url, 'GET', '/api/admin/export/preferences', admin)).body.trim().split('\n')).toHaveLength(2);
    // Exactly those labels: bo's prompt item is not done, so nothing else is exported.
    expect((await call(studio.url, 'GET', '/api/admin/export/prompts', admin)).body).toBe('');
    expect(studio.store.submissions()).toHaveLength(2);
  }, 240_000);

  it("a second labeler's token cannot read the first one's queue", async () => {
    const anaItems = studio.store.items().filter((i) => i.task !== 'prompt' && i.source !== 'more.jsonl').map((i) => i.id);
    const page = await signIn(bo);
    await page.locator('#queue li').first().waitFor();
    const links = await page.locator('#queue li a').allTextContents();
    expect(links).toHaveLength(1);
    expect(links[0]).toMatch(/Write a prompt$/);
    // From inside the page with bo's token: ana's items answer 404, as missing ones do.
    const statuses = await page.evaluate(async ({ ids, token }) => {
      const out: number[] = [];
      for (const id of ids) out.push((await fetch(`/api/items/${id}`, { headers: { authorization: `Bearer ${token}` } })).status);
      return out;
    }, { ids: anaItems, token: bo });
    expect(statuses).toEqual(anaItems.map(() => 404));
    await page.goto(`${studio.url}#item/${anaItems[0]}`);
    await page.locator('#status.error').waitFor();
    expect(await page.locator('#status').textContent()).toBe('no such item in your queue');
    await page.close();
  }, 120_000);

  it('the other task types: pairwise with a reason, Likert, rewrite, prompt and response, prompt', async () => {
    // A project of its own, so that assignment does not depend on the tests above.
    const dir2 = mkdtempSync(join(tmpdir(), 'studio-e2e-tasks-'));
    writeFileSync(join(dir2, 'studio.json'), JSON.stringify({ completions: { source: 'openai', url: mock.url, model: 'mock' } }));
    const s2 = await startStudio({ projectDir: dir2, port: 0, log: () => {} });
    try {
      const root = ensureAdmin(s2.store)!;
      const cy = (await call(s2.url, 'POST', '/api/admin/labelers', root, { name: 'cy' })).body.token as string;
      for (const [task, prompt] of [['pairwise', 'Which is kinder?'], ['likert', 'Rate these'], ['rewrite', 'Improve this']] as const) {
        expect((await call(s2.url, 'POST', `/api/admin/upload?task=${task}&k=3&overlap=1&filename=p.jsonl`, root, JSON.stringify({ prompt }), true)).status).toBe(200);
      }
      for (const task of ['prompt_response', 'prompt']) expect((await call(s2.url, 'POST', '/api/admin/open-tasks', root, { task, count: 1, overlap: 1 })).status).toBe(200);

      const page = await context.newPage();
      await page.goto(s2.url);
      await page.fill('#token', cy);
      await page.click('#login button[type=submit]');
      const open = async (n: number) => {
        await page.locator('#queue li').nth(n - 1).waitFor();
        await page.locator('#queue li').first().locator('a').click();
        await page.locator('#submit').waitFor();
      };
      const submit = async (expectError?: string) => {
        await page.click('#submit');
        if (expectError) {
          await page.locator('#status.error').waitFor();
          expect(await page.locator('#status').textContent()).toBe(expectError);
        } else await page.locator('#status.ok').waitFor();
      };

      await open(5); // pairwise: no choice is refused, then B with a reason
      await page.fill('#reason', 'B is polite.');
      await submit('choose completion A or B');
      await page.check('#choice-1');
      if (shoot) await page.screenshot({ path: join(docs, 'pairwise.png') });
      await submit();

      await open(4); // Likert: a missing score is refused
      const selects = page.locator('select.likert');
      expect(await selects.count()).toBe(3);
      await selects.nth(0).selectOption('6');
      await selects.nth(2).selectOption('2');
      await submit('score 2 must be a whole number from 1 to 7');
      await selects.nth(1).selectOption('6');
      await submit();

      await open(3); // rewrite: starts from the completion's text
      expect(await page.inputValue('#rewrite')).toBe('Improve this -> answer 0');
      await page.fill('#rewrite', 'A better answer.');
      await submit();

      await open(2); // prompt and response
      await page.fill('#prompt-input', 'What is 2 + 2?');
      await page.fill('#response', '4');
      await submit();

      await open(1); // prompt only
      await page.fill('#prompt-input', 'x'.repeat(20_001));
      // The textarea's maxlength stops typing at 20,000; the server's own limit is tested in tasks.test.ts.
      expect((await page.inputValue('#prompt-input')).length).toBe(20_000);
      await page.fill('#prompt-input', 'Write a haiku about rain.');
      await submit();
      await page.locator('#empty').waitFor();
      await page.close();

      const get = async (kind: string) => ((await call(s2.url, 'GET', `/api/admin/export/${kind}`, root)).body as string).trim().split('\n').map((l) => JSON.parse(l));
      const comps = await get('comparisons');
      expect(comps.map((c) => [c.prompt, c.ranking, c.reason, c.likert])).toEqual([
        ['Which is kinder?', [[1], [0]], 'B is polite.', undefined],
        ['Rate these', [[0, 1], [2]], undefined, [6, 6, 2]],
      ]);
      expect((await get('demonstrations')).map((d) => [d.prompt, d.completion])).toEqual([['Improve this', 'A better answer.'], ['What is 2 + 2?', '4']]);
      expect((await get('prompts')).map((d) => d.prompt)).toEqual(['What is 2 + 2?', 'Write a haiku about rain.']);
    } finally {
      await s2.close();
      rmSync(dir2, { recursive: true, force: true });
    }
  }, 240_000);
});
