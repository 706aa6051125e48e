{#-
    The churn and propensity classifiers' rows: the features as of each date beside that date's labels
    (ml/features.py classifier_frames reads it). Rows where neither label window is complete (the newest
    as-of dates) train nothing and are left out.
-#}
with

features as (
    select * from {{ ref('fct_customer_features') }}
),

labels as (
    select * from {{ ref('fct_customer_labels') }}
    where label_complete_next_cycle or label_complete_churn
),

final as (
    select
        features.customer_id,
        features.as_of_date,
        {{- ml_select('features', ml_feature_columns()) }}
        features.member_id is not null as is_member,
        labels.purchased_next_cycle,
        labels.churned,
        labels.label_complete_next_cycle,
        labels.label_complete_churn
    from features
    inner join labels
        on labels.customer_id = features.customer_id and labels.as_of_date = features.as_of_date
)

select * from final
