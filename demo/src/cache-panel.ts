/** The model manager's storage half: cached models with their sizes, delete, quota and persistence. */
import { elements } from './elements.ts';
import { megabytes } from './format.ts';
import { deleteCachedModel, listCachedModels } from './model-cache.ts';

const ui = elements.cache;

export async function refreshCachePanel(): Promise<void> {
  const models = await listCachedModels();
  ui.list.replaceChildren(
    ...(models.length === 0
      ? [Object.assign(document.createElement('li'), { textContent: 'No model cached yet.' })]
      : models.map((model) => {
          const item = document.createElement('li');
          const remove = document.createElement('button');
          remove.type = 'button';
          remove.textContent = 'Delete';
          remove.setAttribute('aria-label', `Delete ${model.id} from the cache`);
          remove.addEventListener('click', async () => {
            await deleteCachedModel(model.id);
            await refreshCachePanel();
          });
          item.append(`${model.id} — ${megabytes(model.bytes)}`, remove);
          return item;
        })),
  );
  const estimate = await navigator.storage?.estimate?.();
  const persisted = await navigator.storage?.persisted?.();
  ui.storage.textContent = estimate
    ? `Storage: ${megabytes(estimate.usage ?? 0)} used of ${megabytes(estimate.quota ?? 0)} available; ${persisted ? 'persistent (the browser will not evict it)' : 'not persistent (the browser may evict it under pressure)'}.`
    : 'This browser does not report storage use.';
}

/** Asks once per visit; browsers grant it silently to installed or often-used sites. */
export async function requestPersistentStorage(): Promise<void> {
  if (navigator.storage?.persist && !(await navigator.storage.persisted())) await navigator.storage.persist();
}
